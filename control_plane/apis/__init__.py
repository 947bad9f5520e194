"""The wire APIs Switchyard speaks: to apps (front doors) and to providers (`api:`), and the
translations between them. The guarded path works in the OpenAI chat-completions form."""
