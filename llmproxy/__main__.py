"""`python -m llmproxy` is the `llmproxy` command."""

from llmproxy.commands.cli import main

raise SystemExit(main())
