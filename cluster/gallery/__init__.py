"""Face gallery: watchlist and social-media faces in Milvus (embedded milvus-lite or a real server)."""
