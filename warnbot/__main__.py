from warnbot.cli import main

raise SystemExit(main())
