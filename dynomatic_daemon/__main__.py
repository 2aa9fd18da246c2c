from dynomatic_daemon.cli import main

raise SystemExit(main())
