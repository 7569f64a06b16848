from hpcansible_jobs.gpu_exporter.server import main

raise SystemExit(main())
