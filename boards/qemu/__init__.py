"""Package marker so the host package can ship this folder as data; not imported on the device."""
