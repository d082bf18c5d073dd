"""``sara serve`` argument handling: one-line errors before anything is loaded or bound."""

from __future__ import annotations

import socket

from sara.cli.__main__ import build_parser, main


def test_serve_defaults_build_the_config() -> None:
    from sara.cli.serve import build_config

    args = build_parser().parse_args(["serve"])
    cfg = build_config(args)
    assert (args.host, args.port, args.token, args.insecure) == ("127.0.0.1", 8000, None, False)
    assert cfg.models == ("sara-demo",) and cfg.batching and cfg.queue_size == 64
    cfg = build_config(build_parser().parse_args(["serve", "--model", "a", "--model", "b", "--no-batching",
                                                  "--max-upload-mb", "1", "--max-steps", "50"]))
    assert cfg.models == ("a", "b") and not cfg.batching
    assert cfg.limits.max_upload_bytes == 1024 * 1024 and cfg.limits.max_steps == 50


def test_non_loopback_host_without_token_exits_2(capsys) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sara serve: error: --host 0.0.0.0 is reachable from other machines") and "\n" not in err


def test_bad_arguments_exit_2(capsys) -> None:
    assert main(["serve", "--model", "/no/such/model"]) == 2
    assert "not a bundled model" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--max-steps", "0"]) == 2


def test_port_in_use_is_one_line(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sara serve: error:") and "in use" in err and "\n" not in err


def test_keep_alive_outlasts_client_connection_pools() -> None:
    import httpx

    from sara.cli.serve import uvicorn_config

    cfg = uvicorn_config(object(), build_parser().parse_args(["serve"]))
    assert cfg.timeout_keep_alive == 30 and cfg.timeout_keep_alive > httpx.Limits().keepalive_expiry
    assert uvicorn_config(object(), build_parser().parse_args(["serve", "--keep-alive", "7"])).timeout_keep_alive == 7
