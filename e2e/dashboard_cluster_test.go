package e2e

import (
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"
)

// TestDashboard_ClusterPanel: on a cluster member the dashboard lists the
// members, the leader and each one's applied revision, live; a killed
// member shows as unreachable. On a single node the panel stays hidden.
func TestDashboard_ClusterPanel(t *testing.T) {
	t.Run("SingleNode", func(t *testing.T) {
		page := openDashboard(t, startServer(t))
		time.Sleep(500 * time.Millisecond) // the panel's first fetch has answered
		if err := expect.Locator(page.GetByTestId("cluster-panel")).ToBeHidden(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Cluster", func(t *testing.T) {
		c := startCluster(t)
		l := c.leader()
		page := openDashboard(t, c.members[l])
		panel := page.GetByTestId("cluster-panel")
		if err := expect.Locator(panel).ToBeVisible(); err != nil {
			t.Fatal(err)
		}
		if err := expect.Locator(page.GetByTestId("cluster-leader")).ToHaveText(c.ids[l]); err != nil {
			t.Fatal(err)
		}
		rows := panel.Locator(`[data-testid="cluster-member"]`)
		if err := expect.Locator(rows).ToHaveCount(3); err != nil {
			t.Fatal(err)
		}
		leaderRow := panel.Locator(`tr[data-member="` + c.ids[l] + `"]`)
		if err := expect.Locator(leaderRow.GetByTestId("member-role")).ToHaveText("leader"); err != nil {
			t.Fatal(err)
		}
		// A write shows up as a new applied revision on every member.
		if _, err := page.Request().Put(c.members[l].URL+"/v1/kv/panel", playwright.APIRequestContextPutOptions{Data: "x"}); err != nil {
			t.Fatal(err)
		}
		for _, id := range c.ids {
			cell := panel.Locator(`tr[data-member="` + id + `"]`).GetByTestId("member-rev")
			if err := expect.Locator(cell).Not().ToHaveText("0"); err != nil {
				t.Fatalf("member %s: %v", id, err)
			}
		}
		// A killed follower is shown as unreachable.
		f := others(l)[0]
		c.members[f].Kill()
		health := panel.Locator(`tr[data-member="` + c.ids[f] + `"]`).GetByTestId("member-health")
		if err := expect.Locator(health).ToHaveText("unreachable"); err != nil {
			t.Fatal(err)
		}
		c.members[f].Start()
	})
}
