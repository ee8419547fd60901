"""tsnegrid: lay out images on a grid so that images that look alike sit next to each other."""
