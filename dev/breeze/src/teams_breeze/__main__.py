from teams_breeze.cli import main

raise SystemExit(main())
