"""``python -m longanimation`` runs the command line."""

from .cli.app import main

main()
