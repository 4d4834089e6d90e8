package web

import (
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pykv/pykv/persist"
	"github.com/pykv/pykv/persist/cluster"
)

// DB is what the server needs of the persistence behind the store:
// *persist.DB implements it; tests may pass a fake.
type DB interface {
	// Status reports revisions, sizes and the last recovery.
	Status() persist.Status
	// Export writes the store in the snapshot format.
	Export(w io.Writer) error
	// Import loads a snapshot or a flat file as one write, skipping
	// unchanged keys; in persist.ImportReplace mode it also deletes the
	// keys the file does not hold. Malformed input gives an error wrapping
	// persist.ErrBadImport.
	Import(r io.Reader, mode persist.ImportMode) (persist.ImportResult, error)
	// Err is non-nil once the store refuses writes after an I/O failure.
	Err() error
}

// isUnavailable reports whether err says the store refuses writes after a
// storage failure (reads keep working): a 503.
func isUnavailable(err error) bool { return errors.Is(err, persist.ErrFailed) }

// collectDB adds the persistence figures to a scrape.
func collectDB(ch chan<- prometheus.Metric, db DB) {
	if db == nil {
		return
	}
	st := db.Status()
	writable := 1.0
	if st.Failed != "" {
		writable = 0
	}
	ch <- prometheus.MustNewConstMetric(descLog, prometheus.GaugeValue, float64(st.LogBytes))
	ch <- prometheus.MustNewConstMetric(descSnap, prometheus.GaugeValue, float64(st.SnapshotBytes))
	ch <- prometheus.MustNewConstMetric(descCompact, prometheus.CounterValue, float64(st.Compactions))
	ch <- prometheus.MustNewConstMetric(descFsyncs, prometheus.CounterValue, float64(st.Fsyncs))
	ch <- prometheus.MustNewConstMetric(descWritable, prometheus.GaugeValue, writable)
	if cdb, ok := db.(clusterDB); ok {
		collectRaft(ch, cdb.node.Status())
	}
}

// collectRaft adds a cluster member's raft figures to a scrape.
func collectRaft(ch chan<- prometheus.Metric, st cluster.Status) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	lag := float64(0)
	if st.CommitIndex > st.AppliedIndex {
		lag = float64(st.CommitIndex - st.AppliedIndex)
	}
	contact := float64(0)
	if st.State != "Leader" && !st.LastContact.IsZero() {
		contact = time.Since(st.LastContact).Seconds()
	}
	for _, m := range []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v float64
	}{
		{descTerm, prometheus.GaugeValue, float64(st.Term)},
		{descCommitIndex, prometheus.GaugeValue, float64(st.CommitIndex)},
		{descAppliedIndex, prometheus.GaugeValue, float64(st.AppliedIndex)},
		{descLastIndex, prometheus.GaugeValue, float64(st.LastIndex)},
		{descApplyLag, prometheus.GaugeValue, lag},
		{descLeader, prometheus.GaugeValue, b(st.State == "Leader")},
		{descHasLeader, prometheus.GaugeValue, b(st.Leader != "")},
		{descLeaderChanges, prometheus.CounterValue, float64(st.LeaderChanges)},
		{descLastContact, prometheus.GaugeValue, contact},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.t, m.v)
	}
}
