"""The official profile is the release; corrected changes exactly what sms.deviations lists."""
from sms.config import RunConfig, resolve
from sms.deviations import RELEASE_QUIRKS


def _field(resolved, dotted):
    if dotted.startswith("loop."):
        return getattr(resolved.loop, dotted[5:])
    value = resolved.method_config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def test_official_has_every_release_quirk_and_corrected_fixes_the_marked_ones():
    official = resolve(RunConfig(method="sms", profile="official"))
    corrected = resolve(RunConfig(method="sms", profile="corrected"))
    for quirk in RELEASE_QUIRKS:
        assert _field(official, quirk.setting) == quirk.official, quirk.setting
        expected = quirk.official if quirk.corrected is None else quirk.corrected
        assert _field(corrected, quirk.setting) == expected, quirk.setting
    assert corrected.method_config.exact_posterior is True and corrected.method_config.fake_guidance_scale == 1.0
