"""Reference media: fetching URLs safely, sniffing their type and probing them."""
