package passphrase

// Opening returns the passphrase that opens a sealed link or recipe: from
// --passphrase-file, else asked once on the terminal (a usage error when
// standard input is not one).
func (e Prompter) Opening(o Options) ([]byte, error) { return e.opening(o) }
