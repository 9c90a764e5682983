"""Round trips: whatever is saved loads back exactly, under any key."""

from __future__ import annotations

import pytest
from hypothesis import given

from nanosession.errors import SerializationError
from nanosession.record import SessionRecord, Update
from nanosession.store import Store
from nanosession.testing.base import ConformanceBase, assert_same_record
from nanosession.testing.sessions import (
    HYPOTHESIS,
    SAMPLES,
    T0,
    conversation,
    message,
    records,
    unique_key,
)


class RoundTripTests(ConformanceBase):
    """Sessions of every shape survive save and load unchanged."""

    @pytest.mark.parametrize("sample", sorted(SAMPLES))
    def test_sample_round_trips(self, store: Store, sample: str) -> None:
        record = SAMPLES[sample](f"sample:{sample}")
        version = store.save(record)
        assert isinstance(version, str) and version
        loaded = store.load(record.key)
        assert_same_record(loaded, SAMPLES[sample](f"sample:{sample}"))
        assert isinstance(loaded.version, str) and loaded.version

    @HYPOTHESIS
    @given(record=records())
    def test_arbitrary_sessions_round_trip(self, store: Store, record: SessionRecord) -> None:
        store.save(record, mode="create")
        assert_same_record(store.load(record.key), record)

    def test_resave_of_a_loaded_session_round_trips(self, store: Store) -> None:
        store.save(SAMPLES["tool_calls"]("k"))
        loaded = store.load("k")
        loaded.messages = [*loaded.messages, message("user", "one more")]
        loaded.metadata = {**loaded.metadata, "title": "renamed"}
        store.save(loaded)  # default mode: Update(loaded.version)
        assert_same_record(store.load("k"), loaded)

    def test_loaded_and_saved_messages_belong_to_the_caller(self, store: Store) -> None:
        """A backend keeps no reference to what it was given or returned: managers hold
        loaded messages as they are and edit them in place."""
        record = SAMPLES["tool_calls"]("owned")
        store.save(record)
        record.messages[0]["content"] = "edited after save"  # type: ignore[index]
        first = store.load("owned")
        for loaded in first.messages:
            loaded["content"] = "edited after load"  # type: ignore[index]
            for call in loaded.get("tool_calls") or ():
                call["function"]["arguments"] = "{}"
        assert_same_record(store.load("owned"), SAMPLES["tool_calls"]("owned"))

    def test_durable_save_round_trips(self, store: Store) -> None:
        record = SessionRecord("durable", conversation(3), {"title": "d"}, T0, T0)
        store.save(record, durable=True)
        assert_same_record(store.load("durable"), record)

    def test_version_changes_with_content(self, store: Store) -> None:
        record = SessionRecord("k", conversation(1), {}, T0, T0)
        seen = [store.save(record)]
        for i in range(3):
            record.messages = [*record.messages, message("user", f"m{i}")]
            seen.append(store.save(record, mode=Update(seen[-1])))
        assert len(set(seen)) == len(seen), "a changed session kept an old version token"
        assert len(store.load("k").messages) == 4

    def test_lone_surrogates_round_trip_or_are_refused(self, store: Store) -> None:
        """Slicing emoji can leave half a surrogate pair; never store something else."""
        record = SessionRecord(unique_key(), [message("user", "cut \ud83d emoji")], {}, T0, T0)
        try:
            store.save(record)
        except SerializationError:
            assert store.get(record.key) is None
        else:
            assert_same_record(store.load(record.key), record)
