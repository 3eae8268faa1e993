"""The ``longanimation`` console command."""
