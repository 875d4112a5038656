"""`python -m bot` runs the accessbot command line."""

from bot.cli import main

raise SystemExit(main())
