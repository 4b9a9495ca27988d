"""Face models: detection (MTCNN), alignment, embedding (dlib ResNet port) and quality."""
