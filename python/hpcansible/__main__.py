from hpcansible.cli import main

raise SystemExit(main())
