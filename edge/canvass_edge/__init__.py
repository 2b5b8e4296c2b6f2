"""canvass-edge: the agent at a camera owner's site that streams a camera to Canvass's relay only while a live
window that includes it is open. The cameras' local addresses and passwords stay in its configuration file."""
