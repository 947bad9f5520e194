"""The policy model, its files (policies/*.yaml, apps.yaml), and live reloading."""
