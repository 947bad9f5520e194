from harness.fake_provider.server import main

main()
