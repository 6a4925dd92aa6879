// placeholder replaced by the widget work
