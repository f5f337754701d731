"""Pages people look at: the marketer dashboard and the store-staff screen (ja / en)."""
