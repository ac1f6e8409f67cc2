"""Media in and out: sniff, probe and decode references; fit frames; encode H.264 + AAC MP4.

This package knows nothing of tasks or engines. Import the concept you need from its module
(`r2v.media.decode`, `r2v.media.probe`, `r2v.media.fit`, `r2v.media.encode`,
`r2v.media.formats`).
"""
