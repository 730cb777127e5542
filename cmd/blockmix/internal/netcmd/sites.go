package netcmd

import (
	"fmt"
	"strings"

	"github.com/blockmix/blockmix/webui/apiv1"
)

// siteWords says where the node stands and the sites it knows:
// "east (known sites: east 3 nodes, west 2 nodes)".
func siteWords(site string, sites []apiv1.SiteInfo) string {
	var known []string
	for _, s := range sites {
		known = append(known, nodesWords(s.Site, s.Nodes))
	}
	w := "none (--site names it)"
	if site != "" {
		w = site
	}
	switch {
	case len(sites) >= 2:
		return w + " (known sites: " + strings.Join(known, ", ") + "; each block's copies go to two of them)"
	case len(sites) == 1:
		return w + " (known sites: " + known[0] + ")"
	}
	return w
}

// partnerWords says which partner donors the node knows and how many
// copies of each block go to them: "b-club 2 nodes; 1 copy of each block
// goes to them (--partner-copies)".
func partnerWords(copies int, partners []apiv1.PartnerInfo) string {
	var known []string
	for _, p := range partners {
		known = append(known, nodesWords(p.Home, p.Nodes))
	}
	w := "none known"
	if len(known) > 0 {
		w = strings.Join(known, ", ")
	}
	switch {
	case copies == 1:
		w += "; 1 copy of each block goes to them (--partner-copies)"
	case copies > 1:
		w += fmt.Sprintf("; %d copies of each block go to them (--partner-copies)", copies)
	}
	return w
}

// nodesWords is "east 3 nodes" or "east 1 node".
func nodesWords(name string, nodes int) string {
	if nodes == 1 {
		return fmt.Sprintf("%s 1 node", name)
	}
	return fmt.Sprintf("%s %d nodes", name, nodes)
}
