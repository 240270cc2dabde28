"""Pictures of results (numpy and Pillow): colour maps, a software mesh renderer, curve overlays."""
