"""What the gateway tells about itself: metrics, traces, access lines, recent traffic, samples."""
