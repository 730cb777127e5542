package apiv1

// SiteInfo is one site and how many of the nodes a node knows (itself
// included) stand in it.
type SiteInfo struct {
	Site  string `json:"site"`
	Nodes int    `json:"nodes"`
}
