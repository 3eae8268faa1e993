"""The web UI (``longanimation ui``): a Gradio front end over the same code as ``longanimation colorize``.

Gradio is an optional extra (``pip install -e ".[ui]"``), so nothing here is
imported by the core package: :mod:`longanimation.ui.job` turns uploads into a
CLI run without touching Gradio, and :mod:`longanimation.ui.app` (which does
import Gradio) lays out the page.
"""
