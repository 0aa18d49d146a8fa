from app.cache.strategy import CacheStrategy, ListScope

STORY_STRATEGY = CacheStrategy(
    entity="story",
    ttl_setting="cache_story_ttl",
    list_scopes=(
        ListScope("child", "child_id"),
        ListScope("child_name", "child_name"),
        ListScope("lang", "language"),
    ),
    personal_attributes=frozenset({"child_name"}),
)
