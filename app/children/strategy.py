from app.cache.strategy import CacheStrategy, ListScope

CHILD_STRATEGY = CacheStrategy(
    entity="child",
    ttl_setting="cache_child_ttl",
    list_scopes=(ListScope("name", "name"),),
    exact_match=("name", "age", "gender"),
    personal_attributes=frozenset({"name"}),
)
