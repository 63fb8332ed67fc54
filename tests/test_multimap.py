from digest import store
from digest.multimap import Multimap, code, hex_name
from tests.factories import make_article


def test_values_come_back_in_the_order_added_with_repeats_past_many_growths() -> None:
    table = Multimap()
    for n in range(20_000):
        table.add(n * 7919, n)
        table.add(n * 7919, n)
    assert table.get(7919 * 12_345) == [12_345, 12_345]
    assert table.get(7919 * 3, limit=1) == [3]
    assert table.get(1) == []


def test_a_store_key_is_its_own_number_and_any_other_string_is_hashed() -> None:
    key = store.article_id("A title", "lead")
    assert hex_name(code(key)) == key
    assert code("not a hash") == code("not a hash") != code("not a hash!")


def test_written_tells_each_stored_id_and_finds_ids_by_key_as_added() -> None:
    written = store.Written()
    odd, hashed = "feed-entry-7", make_article().id
    written.add("some key", odd)
    written.add("some key", hashed)
    written.add("some key", odd)
    assert written.holders("some key") == [odd, hashed, odd]
    assert written.holders("some key", limit=2) == [odd, hashed]
    assert written.counted(odd) is None  # under a key, not yet stored
    written.count(odd, 2)
    written.count("stored, under no key", 0)
    assert (written.counted(odd), written.counted(hashed)) == (2, None)
    assert written.counted("stored, under no key") == 0
