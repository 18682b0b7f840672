package server_test

import "github.com/ferry-go/ferry/middleware"

type middlewareHandler = middleware.Handler
