"""Two-way git sync of a project's story files (README "Git sync"): `links` (linking a
project to a repository), `gitrepo` (dulwich: fetch, trees, commits, push) and `engine`
(one sync: pull, push, conflicts). dulwich is imported only when a sync runs."""
