// widget app
