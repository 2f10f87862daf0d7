"""is_in answers as pandas' isin does, for every kind of column and candidates a sync passes it."""

import numpy as np
import pandas as pd
import pytest

from crm_pipelines.frames import is_in

TEXT = pd.Series(["a", None, "b", "c"], dtype="str", index=[10, 11, 12, 13])


@pytest.mark.parametrize("values", [
    ["a", "c"], pd.Series(["c", "x"], dtype="str"), pd.Series(["b"], dtype=object), pd.Index(["a"]),
    np.array(["b", "c"], dtype=object), {"a", "b"}, {"c": 1}, [None], [], ["a", None], [1, "a"],
    pd.concat([pd.Series(["a"], dtype="str"), pd.Series(["b"], dtype="str")]),
])
def test_is_in_answers_as_pandas(values):
    expected = TEXT.isin(values)
    found = is_in(TEXT, values)
    pd.testing.assert_series_equal(found, expected)


def test_is_in_reads_a_column_of_several_arrow_chunks():
    column = pd.concat([pd.Series(["a", "b"], dtype="str"), pd.Series(["c", None], dtype="str")], ignore_index=True)
    assert is_in(column, ["c", "a"]).tolist() == [True, False, True, False]


@pytest.mark.parametrize("column", [pd.Series([1, 2, 3]), pd.Series(["a", 2, None], dtype=object)])
def test_is_in_leaves_other_columns_to_pandas(column):
    pd.testing.assert_series_equal(is_in(column, [2, "a"]), column.isin([2, "a"]))
