from app.cache.strategy import CacheStrategy, ListScope

HERO_STRATEGY = CacheStrategy(
    entity="hero",
    ttl_setting="cache_hero_ttl",
    list_scopes=(ListScope("name", "name"), ListScope("lang", "language")),
)
