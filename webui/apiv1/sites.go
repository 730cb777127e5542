package apiv1

// SiteInfo is one site and how many of the nodes a node knows (itself
// included) stand in it.
type SiteInfo struct {
	Site  string `json:"site"`
	Nodes int    `json:"nodes"`
}

// PartnerInfo is one home group and how many of the partner donors a
// node knows (itself included, when it is one) are at home in it: nodes
// that serve the node's group from a donor of another group (see
// --partner-copies).
type PartnerInfo struct {
	Home  string `json:"home"`
	Nodes int    `json:"nodes"`
}
