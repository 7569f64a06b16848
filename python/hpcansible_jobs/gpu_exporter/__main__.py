from hpcansible.gpu_exporter.server import main

raise SystemExit(main())
