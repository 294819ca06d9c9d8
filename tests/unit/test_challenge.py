from freight.transport.challenge import parse_challenges


def test_quoted_values_keep_commas_and_spaces() -> None:
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope"')
    (c,) = parse_challenges(header)
    assert c.scheme == "bearer"
    assert c.params["scope"] == "repository:a/b:pull,push repository:c:pull"
    assert c.params["error"] == "insufficient_scope"


def test_several_challenges_and_token_values() -> None:
    found = parse_challenges('Basic realm="Registry Realm", Bearer realm="x",service=reg')
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert found[1].params == {"realm": "x", "service": "reg"}


def test_escaped_quote() -> None:
    (c,) = parse_challenges(r'Basic realm="a \"quoted\" realm"')
    assert c.params["realm"] == 'a "quoted" realm'


def test_schemes_and_parameter_names_are_case_insensitive() -> None:
    (c,) = parse_challenges('BEARER Realm="https://auth.example/token" , Service = "reg"')
    assert c.scheme == "bearer" and c.params == {"realm": "https://auth.example/token",
                                                 "service": "reg"}


def test_a_scheme_alone_and_nothing_at_all() -> None:
    assert [(c.scheme, c.params) for c in parse_challenges("Negotiate")] == [("negotiate", {})]
    assert parse_challenges("") == [] and parse_challenges("  ") == []
    assert parse_challenges('="x"') == []


def test_challenges_after_a_bare_scheme() -> None:
    found = parse_challenges('Negotiate, Basic realm="r"')
    assert [(c.scheme, c.params) for c in found] == [("negotiate", {}), ("basic", {"realm": "r"})]
