"""Each consistency mechanism the README states is proven by a test that fails when that
mechanism alone is removed. Every case below removes one mechanism (an exact edit of the
source, in a copy of the project) and runs the tests named for it: they must fail there.

The same tests pass on the real source in the rest of the suite; a case whose edit no longer
matches the source fails too, so a refactoring cannot silently retire a check.
"""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("app", "tests", "alembic", "alembic.ini", "pyproject.toml", "README.md", "scripts")
RUN_TIMEOUT = 300
PYTEST_TESTS_FAILED = 1

RACE = "tests/consistency/test_stale_fill_race.py"
OUTAGE = "tests/resilience/test_no_stale_after_outage.py"
STAMPEDE = "tests/stampede/test_single_flight.py"
NEAR = "tests/near/test_near_consistency.py"
ACCESS_LOG = "tests/deploy/test_access_log.py"
MIGRATE = "tests/deploy/test_migrate.py"
LEASES = "tests/consistency/test_leases.py"
FAULTS = "tests/cache/test_faults.py"
IDENTITY = (
    "tests/resilience/test_redis_identity.py"
    "::test_redis_restarted_from_an_older_snapshot_is_recognized_by_both_instances"
)
CLUSTER = "tests/cluster/test_cluster_cache.py"
CLUSTER_OPERATOR = "tests/cluster/test_cluster_operator.py"
CLUSTER_IDENTITY = (
    "tests/cluster/test_cluster_identity.py"
    "::test_a_primary_restarted_from_an_older_snapshot_is_recognized_by_both_instances"
)
CLUSTER_KEY_SCAN = (
    "tests/cluster/test_cluster_key_scan.py"
    "::test_a_pass_under_way_survives_a_failover_and_the_next_pass_sees_every_key_once"
)
CONTRACT = "tests/contract/test_http_contract.py"
OUTBOX = "tests/resilience/test_outbox.py"


@dataclass(frozen=True)
class Mutant:
    mechanism: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant(
        "a fill never replaces a newer version (entry or post-write marker)",
        "app/cache/scripts.py",
        "if existing and version_of(existing) > tonumber(ARGV[2]) then\n  return 0\nend\n",
        "",
        (
            "tests/cache/test_cache_service.py"
            "::test_a_fill_holding_its_lease_never_stores_a_version_older_than_the_marker",
        ),
    ),
    Mutant(
        "a fill never lands in a newer epoch",
        "app/cache/scripts.py",
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then\n  return 0\nend\n",
        "",
        (f"{RACE}::test_fill_read_before_an_epoch_move_is_not_stored",),
    ),
    Mutant(
        "a marker never replaces a newer marker",
        "app/cache/scripts.py",
        "if not existing or version_of(existing) < version then",
        "if true then",
        (
            "tests/cache/test_cache_service.py"
            "::test_a_late_marker_of_an_older_write_does_not_replace_a_newer_one",
        ),
    ),
    Mutant(
        "a hit serves only an entry of the current epoch",
        "app/cache/service.py",
        "if epoch is not None and value.startswith(format.entry_head(epoch)):",
        "if value.startswith(format.ENTRY_STATE_HEAD):",
        (f"{OUTAGE}::test_redis_restarted_from_an_older_snapshot_is_not_served_after_the_outage",),
    ),
    Mutant(
        "access log lines carry no query string (a child's name)",
        "app/core/access_log.py",
        "                record.args = (*args[:PATH_ARG], cut, *args[PATH_ARG + 1 :])\n",
        "",
        (f"{ACCESS_LOG}::test_access_log_lines_carry_no_child_name[uvicorn]",),
    ),
    Mutant(
        "two migration runs upgrade one after the other (advisory lock)",
        "alembic/env.py",
        '        if connection.dialect.name == "postgresql":\n',
        "        if False:\n",
        (f"{MIGRATE}::test_a_migration_waits_for_the_lock_before_reading_the_schema",),
    ),
    Mutant(
        "a page hit serves only a page stamped with the current generations",
        "app/cache/service.py",
        "if value is not None and value.startswith(format.entry_head(stamp)):",
        "if value is not None and value.startswith(format.ENTRY_STATE_HEAD):",
        (
            "tests/cache/test_invalidation_rules.py"
            "::test_hero_update_moves_hero_between_language_and_name_lists",
        ),
    ),
    Mutant(
        "a write moves the generations of the lists it touches",
        "app/cache/scripts.py",
        "    redis.call('INCR', KEYS[i])\n",
        "",
        (
            "tests/cache/test_invalidation_rules.py"
            "::test_hero_update_moves_hero_between_language_and_name_lists",
        ),
    ),
    Mutant(
        "a lost counter restarts at a fresh random value",
        "app/cache/format.py",
        "return random.getrandbits(COUNTER_START_BITS) + 1",
        "return 1",
        (
            "tests/cache/test_lost_counters.py"
            "::test_a_scope_counter_lost_after_a_write_does_not_bring_back_the_older_page",
        ),
    ),
    Mutant(
        "a reader that joined a load older than a write it saw loads again",
        "app/cache/loader.py",
        "if loaded is not None and read is not None and loaded.version < read.floor:",
        "if False:",
        (f"{RACE}::test_reader_joining_a_load_older_than_a_write_made_elsewhere_loads_again",),
    ),
    Mutant(
        "loads begun before a write this process acknowledged take no new callers",
        "app/cache/cached_repository.py",
        "        self._close_flights(plan)\n",
        "",
        (
            f"{RACE}::test_reader_arriving_after_a_write_does_not_join_an_older_load"
            "_while_redis_is_down",
        ),
    ),
    Mutant(
        "an invalidation that failed is sent again before Redis is read again",
        "app/cache/service.py",
        "            self.guard.owe(self._resend(markers, ordered, keys), touched)\n",
        "            pass\n",
        (f"{OUTAGE}::test_write_during_redis_hang_is_read_back_after_resume",),
    ),
    Mutant(
        "a literal path answers its own methods: other methods are 405, not another route's",
        "app/api/methods.py",
        "    app.router.routes.insert(0, MethodNotAllowed(literal, literal=True))\n",
        "",
        (f"{CONTRACT}::test_a_literal_path_is_not_taken_by_a_parametrized_one",),
    ),
    Mutant(
        "a 405 names every method of the path (Allow)",
        "app/api/methods.py",
        "    app.router.routes.append(MethodNotAllowed(templated, literal=False))\n",
        "",
        (f"{CONTRACT}::test_options_on_a_collection_and_an_item_lists_all_their_methods",),
    ),
    Mutant(
        "a near hit refuses a malformed If-None-Match, as the full path does",
        "app/api/near_front.py",
        "if not ETAG_LIST.fullmatch(header):",
        "if False:",
        (
            "tests/near/test_near_contract.py"
            "::test_a_malformed_if_none_match_on_a_near_copy_is_the_full_paths_422",
        ),
    ),
    Mutant(
        "a write invalidates after its commit",
        "app/core/database.py",
        "            try:\n                await self._session.commit()\n",
        "            try:\n                await self._run_after_commit()\n"
        "                await self._session.commit()\n",
        (
            "tests/consistency/test_write_ordering.py"
            "::test_every_write_commits_then_invalidates_then_answers",
        ),
    ),
    Mutant(
        "the write's invalidation is sent before its response",
        "app/api/dependencies.py",
        'Depends(dependency, scope="function")',
        'Depends(dependency, scope="request")',
        (
            "tests/consistency/test_write_ordering.py"
            "::test_every_write_commits_then_invalidates_then_answers",
        ),
    ),
    Mutant(
        "concurrent misses in one process share one load (single flight)",
        "app/cache/loader.py",
        "loaded, shared = await self.flights.run(\n"
        "            slot.flight(read), lambda: self._load(slot, due, refresh)\n"
        "        )",
        "loaded, shared = await self._load(slot, due, refresh), False",
        (f"{STAMPEDE}::test_single_flight_works_without_redis",),
    ),
    Mutant(
        "misses in other processes wait for the lease holder's fill",
        "app/cache/loader.py",
        "while read is not None and read.value is None and not read.lease and not read.deleted:",
        "while False:",
        (f"{STAMPEDE}::test_second_instance_waits_on_the_redis_lease_and_reads_the_fill",),
    ),
    Mutant(
        "a fill needs the lease its reader took (the marker may have been evicted)",
        "app/cache/scripts.py",
        "if redis.call('GET', KEYS[3]) ~= ARGV[5] then\n  return 0\nend\n",
        "",
        (
            f"{LEASES}::test_a_paused_reader_cannot_fill_after_a_write_even_if_the_marker"
            "_was_evicted",
        ),
    ),
    Mutant(
        "a write's invalidation deletes the leases of the entries it marks",
        "app/cache/scripts.py",
        "  redis.call('DEL', KEYS[markers + i])\n",
        "",
        (
            f"{LEASES}::test_a_paused_reader_cannot_fill_after_a_write_even_if_the_marker"
            "_was_evicted",
        ),
    ),
    Mutant(
        "a manual demotion deletes the leases of the entries it demotes",
        "app/cache/scripts.py",
        "  redis.call('DEL', KEYS[entries + i])\n",
        "",
        (f"{LEASES}::test_a_paused_reader_cannot_fill_after_a_manual_demotion_and_eviction",),
    ),
    Mutant(
        "an early refresh happens only under the lease",
        "app/cache/loader.py",
        "if not await slot.take_lease(refresh):",
        "if False:",
        (f"{LEASES}::test_an_early_refresh_happens_only_under_the_lease",),
    ),
    Mutant(
        "a lease holder that does not fill releases the lease",
        "app/cache/loader.py",
        "        finally:\n            await self._release(slot, token)\n",
        "        finally:\n            pass\n",
        (
            f"{LEASES}::test_a_reader_whose_load_finds_no_row_releases_the_lease",
            f"{LEASES}::test_a_reader_whose_load_raises_releases_the_lease",
            f"{LEASES}::test_a_cancelled_reader_releases_the_lease",
        ),
    ),
    Mutant(
        "a cancelled half-open probe reopens the breaker",
        "app/cache/guard.py",
        "        except BaseException:  # cancelled (or a bug): the probe never answered\n"
        "            if probing:\n                self.breaker.abandon_probe()\n",
        "        except BaseException:  # cancelled (or a bug): the probe never answered\n",
        (f"{FAULTS}::test_a_cancelled_probe_through_the_guard_reopens_the_breaker",),
    ),
    Mutant(
        "without CACHE_KEY_SALT, every process uses the one salt kept in Redis",
        "app/cache/scripts.py",
        "redis.call('SET', KEYS[1], ARGV[1], 'NX')\nreturn redis.call('GET', KEYS[1])",
        "return ARGV[1]",
        (f"{FAULTS}::test_without_a_configured_salt_processes_share_one_generated_in_redis",),
    ),
    Mutant(
        "a process that takes another process's salt moves its epochs",
        "app/cache/service.py",
        "            self.guard.lost_invalidation(self.keys)\n",
        "            pass\n",
        (f"{FAULTS}::test_a_generated_salt_lost_by_redis_is_offered_again_or_replaced",),
    ),
    Mutant(
        "DEMOTE copies the version as a string, never through a Lua number",
        "app/cache/scripts.py",
        "local version = string.match(existing, $version_pattern) or '0'",
        "local version = tonumber(string.match(existing, $version_pattern)) or 0",
        (f"{FAULTS}::test_demote_keeps_the_largest_version_exactly",),
    ),
    Mutant(
        "a pooled connection the server closed is replaced at checkout, not used",
        "app/cache/connection.py",
        '        "maint_notifications_config": MaintNotificationsConfig(enabled=False),\n',
        "",
        (
            "tests/cache/test_degradation.py"
            "::test_connections_pooled_before_a_quick_redis_restart_are_replaced_not_used",
        ),
    ),
)


IDENTITY_MUTANTS = (
    Mutant(
        "every new connection checks the Redis identity before it is used",
        "app/cache/service.py",
        "redis = connect(settings, on_connect=check) if self.enabled else None",
        "redis = connect(settings) if self.enabled else None",
        (
            IDENTITY,
            f"{OUTAGE}::test_redis_restarted_from_an_older_snapshot_is_not_served_after_the_outage",
            CLUSTER_IDENTITY,
            "tests/sentinel/test_failover.py"
            "::test_a_promoted_replica_that_missed_a_write_is_recognized_before_it_is_read",
        ),
    ),
    Mutant(
        "a changed Redis identity moves every entity's epoch",
        "app/cache/identity.py",
        "  redis.call('SET', KEYS[i], ARGV[i + 1])\n",
        "",
        (IDENTITY, CLUSTER_IDENTITY),
    ),
)


OUTBOX_MUTANTS = (
    Mutant(
        "a write records its invalidation in its own transaction (the outbox)",
        "app/cache/outbox.py",
        "        if self.recording:\n            session.add(row)\n",
        "",
        (
            f"{OUTBOX}::test_a_writer_killed_between_commit_and_invalidation_is_repaired"
            "_by_another_instance",
            f"{OUTBOX}::test_shutdown_with_an_invalidation_pending_leaves_it_to_the_next_process",
        ),
    ),
    Mutant(
        "every process applies the outbox rows of other processes (the repairer)",
        "app/main.py",
        "            await outbox.start()\n",
        "",
        (
            f"{OUTBOX}::test_a_write_acknowledged_by_an_instance_cut_off_from_redis_is_served"
            "_by_the_other[closed]",
            f"{OUTBOX}::test_a_write_acknowledged_by_an_instance_cut_off_from_redis_is_served"
            "_by_the_other[open]",
        ),
    ),
    Mutant(
        "a process applies only the outbox rows of its own cache (its CACHE_KEY_PREFIX)",
        "app/cache/outbox.py",
        "        self._own_rows = OutboxRow.key_prefix == cache.prefix\n",
        "        self._own_rows = OutboxRow.key_prefix.is_not(None)\n",
        (f"{OUTBOX}::test_a_process_applies_only_the_outbox_rows_of_its_own_cache",),
    ),
    Mutant(
        "an ambiguous commit invalidates anyway",
        "app/core/database.py",
        "                await self._run_after_commit(ambiguous=True)\n",
        "",
        (f"{OUTBOX}::test_an_ambiguous_commit_invalidates_anyway_and_the_new_etag_works",),
    ),
    Mutant(
        "back from an outage, every outbox row is applied before Redis is read again",
        "app/cache/guard.py",
        "        if self.recover is not None and not await self.recover(redis):\n",
        "        if False:\n",
        (f"{OUTAGE}::test_instance_that_saw_the_outage_applies_the_outbox_before_it_reads_again",),
    ),
    Mutant(
        "back from an outage no epoch moves as a precaution",
        "app/cache/guard.py",
        "        if self.recover is not None and not await self.recover(redis):\n",
        "        self._stale_epochs.update(self.epoch_keys)\n"
        "        if self.recover is not None and not await self.recover(redis):\n",
        (
            f"{OUTAGE}::test_instance_that_saw_the_outage_applies_the_outbox_before_it_reads_again",
            "tests/unit/test_owed_invalidations.py"
            "::test_back_from_an_outage_the_outbox_is_applied_first_and_no_epoch_moves",
        ),
    ),
    Mutant(
        "an invalidation that timed out is owed, not an epoch move",
        "app/cache/guard.py",
        "        self._owed.append(Owed(replay, frozenset(entities)))\n",
        "        self._stale_epochs.update(entities)\n",
        (f"{OUTBOX}::test_an_invalidation_that_timed_out_but_ran_moves_no_epoch",),
    ),
)


NEAR_MUTANTS = (
    Mutant(
        "near copies are served only while the process heard from Redis within L",
        "app/api/near_front.py",
        "if time.monotonic() < bus.valid_until:",
        "if True:",
        (
            f"{NEAR}::test_a_lost_invalidation_holds_the_write_at_most_the_lease_and_is_never_missed",
        ),
    ),
    Mutant(
        "a write waits until every live near cache applied its invalidation",
        "app/cache/near/publisher.py",
        "        await bus.confirmed(invalidation, waiter, live_members(result))\n",
        "",
        (f"{NEAR}::test_a_delayed_invalidation_holds_the_write_until_it_was_applied",),
    ),
    Mutant(
        "an invalidation that could not be sent holds its write for L",
        "app/cache/near/publisher.py",
        "            await bus.unconfirmed(invalidation)\n",
        "",
        (f"{NEAR}::test_a_write_while_redis_hangs_is_read_on_the_other_instance",),
    ),
    Mutant(
        "bytes read before an invalidation was applied are not kept near after it",
        "app/api/near_front.py",
        "            or bus.sequence != sequence\n",
        "",
        (f"{NEAR}::test_an_invalidation_racing_a_near_fill_keeps_the_older_bytes_out",),
    ),
    Mutant(
        "a broken subscription drops every near copy",
        "app/cache/near/bus.py",
        "                self._drop_all()  # what was published meanwhile may never arrive\n",
        "                pass\n",
        (f"{NEAR}::test_the_near_cache_is_dropped_when_its_subscription_breaks",),
    ),
)

AUTH = "tests/auth"

AUTH_MUTANTS = (
    Mutant(
        "a header padded with whitespace is never a key of the token memory",
        "app/api/tokens.py",
        "        if len(authorization) != len(BEARER_SPACE) + len(token):\n",
        "        if False:\n",
        (
            f"{AUTH}/test_verifier_and_settings.py"
            "::test_a_header_padded_with_whitespace_is_accepted_but_never_remembered",
        ),
    ),
    Mutant(
        "the access check runs before any cached answer, the near cache's included",
        "app/api/near_front.py",
        "refusal = access.check(scope)  # before any cached answer",
        "refusal = None",
        (f"{AUTH}/test_cached_answers.py::test_an_answer_cached_near_is_refused_without_a_token",),
    ),
    Mutant(
        "a remembered token stops working when it expires",
        "app/api/tokens.py",
        "if caller is not None and time.time() < caller.expires:",
        "if caller is not None:",
        (
            f"{AUTH}/test_verifier_and_settings.py"
            "::test_a_repeated_token_is_checked_once_and_remembered_until_it_expires",
        ),
    ),
    Mutant(
        "every committed write leaves an audit line",
        "app/api/dependencies.py",
        "            record_writes(request.scope, uow.changes)\n",
        "            pass\n",
        (f"{AUTH}/test_audit_and_secrets.py::test_every_write_leaves_one_audit_line",),
    ),
)

VERIFIER = "tests/operator/test_verifier.py"
PREFETCH = "tests/operator/test_prefetch.py"
SAMPLES = "tests/operator/test_samples.py"
OPERATOR_MUTANTS = (
    Mutant(
        "the verifier repairs a stale entry through the normal path (demote)",
        "app/cache/verifier.py",
        "if stale and await self.cache.demote(entity, [s.key for s in stale]):",
        "if stale and True:",
        # one case (a hang, seen once in CI, then ends in pytest-timeout's failure in time)
        (
            f"{VERIFIER}::test_a_row_changed_in_sql_is_served_fresh_within_one_interval"
            "[UPDATE heroes SET name = 'Fixed', version = version + 1 WHERE id = :id]",
        ),
    ),
    Mutant(
        "the verifier re-reads a suspect before counting it stale (a write in flight)",
        "app/cache/verifier.py",
        "unchanged = [s for s in suspects if (a := again.get(s.key)) and a.value == s.value]",
        "unchanged = suspects",
        (f"{VERIFIER}::test_a_write_in_flight_is_not_counted_stale",),
    ),
    Mutant(
        "a prefetch reads through the loader (single flight and lease: no second load)",
        "app/cache/prefetch.py",
        "            await self.layer.loader.read_through(slot)\n            self.stats.completed",
        "            await slot.load()\n            self.stats.completed",
        (f"{PREFETCH}::test_a_page_being_loaded_is_joined_not_loaded_twice",),
    ),
    Mutant(
        "prefetches are bounded (dropped when every slot is busy)",
        "app/cache/prefetch.py",
        "if len(self.tasks) >= self.concurrency:",
        "if False:",
        (f"{PREFETCH}::test_prefetches_are_bounded_and_the_extra_ones_dropped",),
    ),
    Mutant(
        "a request whose cache lookup missed is timed as a miss",
        "app/cache/loader.py",
        "        looked_up(slot.entity, missed=True)\n",
        "        looked_up(slot.entity, missed=False)\n",
        (f"{SAMPLES}::test_requests_are_timed_as_hits_or_misses",),
    ),
    Mutant(
        "a near hit is timed as a hit",
        "app/api/near_front.py",
        "            stats.latency.hits[entry.entity].record(elapsed)\n",
        "",
        (f"{SAMPLES}::test_requests_are_timed_as_hits_or_misses",),
    ),
)


CLUSTER_MUTANTS = (
    Mutant(
        "on a cluster, rediss:// verifies the nodes with REDIS_TLS_CA_FILE",
        "app/cache/cluster.py",
        '"password", "ssl_ca_certs", "maint_notifications_config")',
        '"password", "maint_notifications_config")',
        (
            "tests/redis_access/test_cluster_tls_and_acl.py"
            "::test_the_service_works_on_a_tls_cluster_as_an_acl_user_with_the_documented_commands",
        ),
    ),
    Mutant(
        "an entity's entries spread over hash tags (every primary of a cluster)",
        "app/cache/format.py",
        "self._entry_tags[entity_id.int % ENTRY_TAGS]",
        "self._entry_tags[0]",
        (f"{CLUSTER}::test_entries_are_cached_and_spread_over_every_primary",),
    ),
    Mutant(
        "on a cluster, an invalidation runs once per slot",
        "app/cache/service.py",
        "        if self.cluster:\n            return cluster.per_slot(self._invalidate_slot,",
        "        if False:\n            return cluster.per_slot(self._invalidate_slot,",
        (f"{CLUSTER}::test_no_stale_entry_or_list_after_patch_and_delete",),
    ),
    Mutant(
        "on a cluster, no node answering is a cache failure (fail-open), never a 500",
        "app/cache/cluster.py",
        "        except RedisClusterException as exc:\n",
        "        except ZeroDivisionError as exc:\n",
        (f"{CLUSTER}::test_an_unreachable_cluster_degrades_to_the_database",),
    ),
    Mutant(
        "on a cluster, the admin flush deletes per slot",
        "app/cache/service.py",
        "        if not self.cluster:\n            return int(await self._delete_entries",
        "        if True:\n            return int(await self._delete_entries",
        (f"{CLUSTER}::test_admin_flush_reaches_every_primary",),
    ),
    Mutant(
        "on a cluster, a key count and the verifier's sampling scan every primary",
        "app/cache/key_scan.py",
        "        if not self.started:  # SCAN 0 on every primary\n",
        "        if True:  # SCAN 0 on every primary (no cursor of its own per primary)\n",
        (
            f"{CLUSTER_OPERATOR}::test_the_keys_under_the_prefix_are_counted_on_every_primary",
            f"{CLUSTER_OPERATOR}::test_the_verifier_repairs_rows_changed_in_sql_on_every_node",
        ),
    ),
    Mutant(
        "on a cluster, a key scan drops a primary that left the slot map during its pass",
        "app/cache/key_scan.py",
        "                if node is not None  # no longer in the slot map: its pass ends here\n",
        "",
        (f"{CLUSTER_KEY_SCAN}[stays-dead]",),
    ),
    Mutant(
        "on a cluster, a key scan drops a primary that is back as a replica during its pass",
        "app/cache/key_scan.py",
        '        if replication.get("role") != "master":\n',
        "        if False:\n",
        (f"{CLUSTER_KEY_SCAN}[rejoins-as-replica]",),
    ),
    Mutant(
        "on a cluster, a key scan that met a replica for a primary has the slot map read again",
        "app/cache/key_scan.py",
        "            slot_map_outdated(redis)\n",
        "",
        (f"{CLUSTER_KEY_SCAN}[rejoins-as-replica]",),
    ),
    Mutant(
        "on a cluster, the verifier reads its sample per slot",
        "app/cache/verifier.py",
        "    if is_cluster(redis):\n        per_slot",
        "    if False:\n        per_slot",
        (f"{CLUSTER_OPERATOR}::test_the_verifier_repairs_rows_changed_in_sql_on_every_node",),
    ),
    Mutant(
        "on a cluster, an epoch move goes as one pipeline per node",
        "app/cache/service.py",
        "        if self.cluster:\n            return cluster.per_node(",
        "        if False:\n            return cluster.per_node(",
        ("tests/cluster/test_cluster_probe.py",),
    ),
)


def copy_project(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.pyc")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


ALL_MUTANTS = (
    MUTANTS
    + OUTBOX_MUTANTS
    + NEAR_MUTANTS
    + AUTH_MUTANTS
    + IDENTITY_MUTANTS
    + CLUSTER_MUTANTS
    + OPERATOR_MUTANTS
)


def test_every_edit_still_matches_the_source_exactly_once() -> None:
    """The quick form of the first check below (the slow cases run last): an edit to the
    source that a case's `old` text no longer matches shows here, in a second."""
    unmatched = [
        mutant.mechanism
        for mutant in ALL_MUTANTS
        if (ROOT / mutant.path).read_text().count(mutant.old) != 1
    ]
    assert unmatched == []


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT + 60)
@pytest.mark.parametrize("mutant", ALL_MUTANTS, ids=lambda m: m.mechanism)
def test_removing_the_mechanism_fails_the_test_named_for_it(mutant: Mutant, tmp_path: Path):
    copy_project(tmp_path)
    path = tmp_path / mutant.path
    source = path.read_text()
    assert source.count(mutant.old) == 1, f"{mutant.path} no longer has: {mutant.old!r}"
    path.write_text(source.replace(mutant.old, mutant.new))

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *mutant.tests],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    summary = run.stdout.strip().splitlines()[-1:] if run.stdout.strip() else run.stderr[-500:]
    assert run.returncode == PYTEST_TESTS_FAILED, (
        f"without '{mutant.mechanism}' the tests {mutant.tests} did not fail "
        f"(exit {run.returncode}): {summary}"
    )
    assert "failed" in run.stdout.splitlines()[-1], summary
