"""Models: CogVideoX backbone, SketchDiT, the long-video memory model, DGLM and the reward."""
