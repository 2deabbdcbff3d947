"""`python -m remaster.models inspect FILE...`: what a model file is, without running a film through it."""

from .check import main

raise SystemExit(main())
