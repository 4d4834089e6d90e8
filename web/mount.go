package web

import (
	"net/http"
)

// The dashboard's handlers, made by the constructors in dashboard.go and
// stream.go and mounted in routes.go.

// dashboardHandler returns the dashboard page handler (GET /).
func (s *server) dashboardHandler() http.Handler {
	status := func() DashboardStatus { return DashboardStatus{} }
	if s.db != nil {
		status = func() DashboardStatus { return DashboardStatus{Sync: string(s.db.Status().Sync)} }
	}
	return NewDashboardHandler(DashboardDeps{Store: s.store, Status: status})
}

// watchHandler returns the websocket change stream (GET /v1/watch).
func (s *server) watchHandler() http.Handler {
	return NewWatchHandler(s.store, WatchOptions{})
}
