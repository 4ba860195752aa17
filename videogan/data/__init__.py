"""Data sources and the clip store.

`preprocess.prepare` turns `data.dataset` into `{train,val,test}.npy` (see `store`); `batches`
reads the train split as deterministic training batches; `download.fetch` is the one downloader.
Sources: `moving_mnist` (the published file and the offline generator), `pacman_emulator`,
`pacman_folder`, and `squares` (a tiny synthetic source for tests).
"""
