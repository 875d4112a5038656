"""`accessbot demo`: the whole product on loopback beside the emulators, and a console to drive it as Slack users."""
