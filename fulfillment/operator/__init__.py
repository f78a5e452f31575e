"""The warehouse operator's side: what they do (`actions`), what they type in (`forms`), what the dashboard
shows them (`queries`)."""
