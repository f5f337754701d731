"""Members, products, stores, inventory: master data every channel reads the same way."""
