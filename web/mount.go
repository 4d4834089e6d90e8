package web

import (
	"net/http"
)

// The dashboard's handlers, made by the constructors in dashboard.go and
// watch.go and mounted in routes.go.

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
	opts := s.opts.Watch
	if s.cluster != nil && opts.Leaderless == nil {
		// A member that has had no leader for three election timeouts is
		// cut off or the cluster lost its majority: its feed is stalled,
		// so its streams close and clients move to another member.
		node := s.cluster.node
		opts.Leaderless = func() bool { return node.LeaderlessFor() >= 3*node.ElectionTimeout() }
	}
	return NewWatchHandler(s.store, opts)
}
