"""The clearance rules (service.clearance): pure, table-driven, every rule and combination."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, timedelta

import pytest

from service.clearance.rules import (
    AgreementFacts,
    ApprovalFacts,
    Code,
    QuoteFacts,
    RestrictionFacts,
    Status,
    applicable_agreement,
    assess,
    overlapping,
)
from service.models.consent import (
    ApprovalDecision,
    Attribution,
    ConsentStatus,
    RestrictionLevel,
)

AS_OF = date(2026, 6, 1)
BEFORE = AS_OF - timedelta(days=1)
AFTER = AS_OF + timedelta(days=1)
NAME = "闫俊杰"
DESCRIPTOR = "一位早期投资人"
VERBATIM = "我们最早做的判断是，多模态一定是未来。"
EDITED = "我们最早的判断是：多模态一定是未来。"
REC = 7

GRANTED = AgreementFacts(id=1, status=ConsentStatus.granted, attribution=Attribution.on_record)


def quote(**kw: object) -> QuoteFacts:
    """A quote at 100-110 s of recording 7 by an identified speaker, on the record."""
    base = QuoteFacts(quote_id=1, recording_id=REC, start=100.0, end=110.0, person_id=5,
                      person_name=NAME, verbatim=VERBATIM, agreements=(GRANTED,))
    return replace(base, **kw)  # type: ignore[arg-type]


def agreement(**kw: object) -> tuple[AgreementFacts, ...]:
    return (replace(GRANTED, **kw),)  # type: ignore[arg-type]


def restriction(level: RestrictionLevel, start: float = 105.0, end: float = 120.0,
                until: date | None = None, rid: int = 1) -> RestrictionFacts:
    return RestrictionFacts(id=rid, start=start, end=end, level=level, until=until)


L = RestrictionLevel
A = ApprovalDecision
C = Code
BG = Attribution.background

# name -> (quote, expected status, expected attribution, expected reason codes in order)
CASES: dict[str, tuple[QuoteFacts, Status, str | None, tuple[Code, ...]]] = {
    "on the record, granted": (quote(), Status.cleared, NAME, ()),
    "no agreement": (quote(agreements=()), Status.blocked, None, (C.no_agreement,)),
    "pending agreement": (quote(agreements=agreement(status=ConsentStatus.pending)),
                          Status.blocked, None, (C.agreement_pending,)),
    "withdrawn agreement": (quote(agreements=agreement(status=ConsentStatus.withdrawn)),
                            Status.blocked, None, (C.agreement_withdrawn,)),
    "unidentified speaker": (quote(person_id=None, person_name=None), Status.blocked, None,
                             (C.unidentified_speaker,)),
    "source recording deleted": (quote(recording_id=None), Status.blocked, None,
                                 (C.source_deleted,)),
    "agreement embargo after publication": (quote(agreements=agreement(embargo_until=AFTER)),
                                            Status.blocked, None, (C.agreement_embargo,)),
    "agreement embargo lifts on publication day": (
        quote(agreements=agreement(embargo_until=AS_OF)), Status.cleared, NAME, ()),
    "agreement embargo already over": (quote(agreements=agreement(embargo_until=BEFORE)),
                                       Status.cleared, NAME, ()),
    "deep background agreement": (
        quote(agreements=agreement(attribution=Attribution.deep_background,
                                   descriptor=DESCRIPTOR)),
        Status.blocked, None, (C.agreement_deep_background,)),
    "off the record agreement": (quote(agreements=agreement(attribution=Attribution.off_record)),
                                 Status.blocked, None, (C.agreement_off_record,)),
    "background with descriptor": (
        quote(agreements=agreement(attribution=BG, descriptor=DESCRIPTOR)),
        Status.cleared, DESCRIPTOR, ()),
    "background without descriptor": (quote(agreements=agreement(attribution=BG)),
                                      Status.blocked, None, (C.background_without_descriptor,)),
    "background with a blank descriptor": (
        quote(agreements=agreement(attribution=BG, descriptor="  ")),
        Status.blocked, None, (C.background_without_descriptor,)),
    "off-record span overlaps": (quote(restrictions=(restriction(L.off_record),)),
                                 Status.blocked, None, (C.restriction_off_record,)),
    "off-record span only touches the end": (
        quote(restrictions=(restriction(L.off_record, 110.0, 120.0),)), Status.cleared, NAME, ()),
    "off-record span elsewhere": (
        quote(restrictions=(restriction(L.off_record, 0.0, 50.0),)), Status.cleared, NAME, ()),
    "off-record span covers the quote": (
        quote(restrictions=(restriction(L.off_record, 90.0, 200.0),)),
        Status.blocked, None, (C.restriction_off_record,)),
    "off-record span inside the quote": (
        quote(restrictions=(restriction(L.off_record, 103.0, 104.0),)),
        Status.blocked, None, (C.restriction_off_record,)),
    "off-record span lifted before publication": (
        quote(restrictions=(restriction(L.off_record, until=BEFORE),)), Status.cleared, NAME, ()),
    "off-record span lifts only after publication": (
        quote(restrictions=(restriction(L.off_record, until=AFTER),)),
        Status.blocked, None, (C.restriction_off_record,)),
    "deep-background span overlaps": (quote(restrictions=(restriction(L.deep_background),)),
                                      Status.blocked, None, (C.restriction_deep_background,)),
    "embargoed span after publication": (
        quote(restrictions=(restriction(L.embargo, until=AFTER),)),
        Status.blocked, None, (C.restriction_embargo,)),
    "embargoed span lifts on publication day": (
        quote(restrictions=(restriction(L.embargo, until=AS_OF),)), Status.cleared, NAME, ()),
    "embargoed span without end date": (quote(restrictions=(restriction(L.embargo),)),
                                        Status.blocked, None, (C.restriction_embargo,)),
    "background span, agreement has a descriptor": (
        quote(agreements=agreement(descriptor=DESCRIPTOR),
              restrictions=(restriction(L.background),)),
        Status.cleared, DESCRIPTOR, (C.restriction_background,)),
    "background span, no descriptor": (
        quote(restrictions=(restriction(L.background),)),
        Status.blocked, None, (C.restriction_background, C.background_without_descriptor)),
    "strictest span wins: background and off-record": (
        quote(agreements=agreement(descriptor=DESCRIPTOR),
              restrictions=(restriction(L.background, 100.0, 110.0, rid=1),
                            restriction(L.off_record, 108.0, 109.0, rid=2))),
        Status.blocked, None, (C.restriction_off_record, C.restriction_background)),
    "strictest span wins: embargo and deep background": (
        quote(restrictions=(restriction(L.embargo, until=AFTER, rid=1),
                            restriction(L.deep_background, rid=2))),
        Status.blocked, None, (C.restriction_deep_background, C.restriction_embargo)),
    "approval required, none asked": (quote(agreements=agreement(approval_required=True)),
                                      Status.needs_approval, NAME, (C.approval_missing,)),
    "approval requested": (
        quote(agreements=agreement(approval_required=True),
              approval=ApprovalFacts(A.requested)),
        Status.needs_approval, NAME, (C.approval_pending,)),
    "approved, same text": (
        quote(agreements=agreement(approval_required=True),
              approval=ApprovalFacts(A.approved, VERBATIM)),
        Status.cleared, NAME, ()),
    "approved, same text up to outer spaces and Unicode form": (
        quote(agreements=agreement(approval_required=True),
              approval=ApprovalFacts(A.approved, f"  {VERBATIM}\n")),
        Status.cleared, NAME, ()),
    "approved other wording": (
        quote(agreements=agreement(approval_required=True),
              approval=ApprovalFacts(A.approved, VERBATIM + "！")),
        Status.needs_approval, NAME, (C.approval_text_changed,)),
    "approved the edited text, which is used": (
        quote(edited=EDITED, agreements=agreement(approval_required=True),
              approval=ApprovalFacts(A.approved, EDITED)),
        Status.cleared, NAME, ()),
    "approved the verbatim text, but the edited text is used": (
        quote(edited=EDITED, agreements=agreement(approval_required=True),
              approval=ApprovalFacts(A.approved, VERBATIM)),
        Status.needs_approval, NAME, (C.approval_text_changed,)),
    "approved without a text": (
        quote(agreements=agreement(approval_required=True), approval=ApprovalFacts(A.approved)),
        Status.needs_approval, NAME, (C.approval_text_changed,)),
    "rejected (approval required)": (
        quote(agreements=agreement(approval_required=True), approval=ApprovalFacts(A.rejected)),
        Status.blocked, None, (C.approval_rejected,)),
    "rejected (approval not required)": (quote(approval=ApprovalFacts(A.rejected)),
                                         Status.blocked, None, (C.approval_rejected,)),
    "approval not required, other wording approved": (
        quote(approval=ApprovalFacts(A.approved, "别的")), Status.cleared, NAME, ()),
    "recording agreement overrides person-wide: withdrawn wins": (
        quote(agreements=(replace(GRANTED, id=1),
                          replace(GRANTED, id=2, recording_id=REC,
                                  status=ConsentStatus.withdrawn))),
        Status.blocked, None, (C.agreement_withdrawn,)),
    "recording agreement overrides person-wide: granted wins": (
        quote(agreements=(replace(GRANTED, id=3, status=ConsentStatus.withdrawn),
                          replace(GRANTED, id=2, recording_id=REC))),
        Status.cleared, NAME, ()),
    "recording agreement overrides person-wide: its background terms apply": (
        quote(agreements=(GRANTED, replace(GRANTED, id=2, recording_id=REC, attribution=BG,
                                           descriptor=DESCRIPTOR))),
        Status.cleared, DESCRIPTOR, ()),
    "another recording's agreement does not apply": (
        quote(agreements=(replace(GRANTED, id=2, recording_id=REC + 1),)),
        Status.blocked, None, (C.no_agreement,)),
    "newest agreement in a scope wins": (
        quote(agreements=(replace(GRANTED, id=4, status=ConsentStatus.withdrawn),
                          replace(GRANTED, id=9))),
        Status.cleared, NAME, ()),
    "blocked beats needs approval, all reasons listed": (
        quote(agreements=agreement(approval_required=True),
              restrictions=(restriction(L.off_record),)),
        Status.blocked, None, (C.restriction_off_record, C.approval_missing)),
    "everything wrong at once": (
        quote(agreements=agreement(status=ConsentStatus.pending, embargo_until=AFTER,
                                   attribution=BG, approval_required=True),
              restrictions=(restriction(L.embargo, until=AFTER),),
              approval=ApprovalFacts(A.rejected)),
        Status.blocked, None,
        (C.agreement_pending, C.agreement_embargo, C.restriction_embargo,
         C.background_without_descriptor, C.approval_rejected)),
    "unidentified speaker inside an off-record span": (
        quote(person_id=None, person_name=None, restrictions=(restriction(L.off_record),)),
        Status.blocked, None, (C.unidentified_speaker, C.restriction_off_record)),
    "background and approval pending: descriptor kept": (
        quote(agreements=agreement(attribution=BG, descriptor=DESCRIPTOR, approval_required=True),
              approval=ApprovalFacts(A.requested)),
        Status.needs_approval, DESCRIPTOR, (C.approval_pending,)),
    "background, approved": (
        quote(agreements=agreement(attribution=BG, descriptor=DESCRIPTOR, approval_required=True),
              approval=ApprovalFacts(A.approved, VERBATIM)),
        Status.cleared, DESCRIPTOR, ()),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rule_table(name: str) -> None:
    q, status, attribution, codes = CASES[name]
    result = assess(q, as_of=AS_OF)
    assert result.status == status, (name, result)
    assert result.attribution == attribution, (name, result)
    assert result.codes == codes, (name, result)
    assert all(r.message for r in result.reasons)
    if status != Status.blocked:
        expected = Attribution.background if attribution == DESCRIPTOR else Attribution.on_record
        assert result.attribution_level == expected
    else:
        assert result.attribution_level is None


APPROVALS = {
    "none": None,
    "requested": ApprovalFacts(A.requested),
    "approved": ApprovalFacts(A.approved, VERBATIM),
    "approved-other": ApprovalFacts(A.approved, "另一种说法"),
    "rejected": ApprovalFacts(A.rejected),
}
SPANS = {
    "none": (),
    "off_record": (restriction(L.off_record),),
    "deep_background": (restriction(L.deep_background),),
    "background": (restriction(L.background),),
    "embargo-future": (restriction(L.embargo, until=AFTER),),
    "embargo-past": (restriction(L.embargo, until=BEFORE),),
}


def _expected(status: ConsentStatus | None, attribution: Attribution, descriptor: str | None,
              embargo: date | None, span: str, required: bool, approval: str,
              ) -> tuple[Status, str | None, set[Code]]:
    """The issue's rules restated independently of service.clearance."""
    codes: set[Code] = set()
    if status is None:
        codes.add(C.no_agreement)
    else:
        codes |= {ConsentStatus.pending: {C.agreement_pending},
                  ConsentStatus.withdrawn: {C.agreement_withdrawn}}.get(status, set())
        if embargo is not None and embargo > AS_OF:
            codes.add(C.agreement_embargo)
        codes |= {Attribution.deep_background: {C.agreement_deep_background},
                  Attribution.off_record: {C.agreement_off_record}}.get(attribution, set())
    codes |= {"off_record": {C.restriction_off_record},
              "deep_background": {C.restriction_deep_background},
              "background": {C.restriction_background},
              "embargo-future": {C.restriction_embargo}}.get(span, set())
    by_descriptor = (attribution == BG and status is not None) or span == "background"
    if by_descriptor and status is not None and not descriptor:
        codes.add(C.background_without_descriptor)
    if approval == "rejected":
        codes.add(C.approval_rejected)
    elif required and status is not None:
        codes |= {"none": {C.approval_missing}, "requested": {C.approval_pending},
                  "approved-other": {C.approval_text_changed}}.get(approval, set())
    blocking = codes - {C.restriction_background, C.approval_missing, C.approval_pending,
                        C.approval_text_changed}
    if blocking:
        return Status.blocked, None, codes
    needs = codes & {C.approval_missing, C.approval_pending, C.approval_text_changed}
    return (Status.needs_approval if needs else Status.cleared,
            descriptor if by_descriptor else NAME, codes)


COMBINATIONS = list(itertools.product(
    [None, *ConsentStatus], list(Attribution), [None, DESCRIPTOR], [None, BEFORE, AS_OF, AFTER],
    list(SPANS), [False, True], list(APPROVALS)))


def test_every_combination_of_rules() -> None:
    """All 7 680 combinations of agreement, span and approval facts, against the oracle."""
    assert len(COMBINATIONS) == 4 * 4 * 2 * 4 * 6 * 2 * 5
    seen: set[Status] = set()
    for status, attribution, descriptor, embargo, span, required, approval in COMBINATIONS:
        agreements = () if status is None else agreement(
            status=status, attribution=attribution, descriptor=descriptor,
            embargo_until=embargo, approval_required=required)
        q = quote(agreements=agreements, restrictions=SPANS[span], approval=APPROVALS[approval])
        result = assess(q, as_of=AS_OF)
        want_status, want_attr, want_codes = _expected(
            status, attribution, descriptor, embargo, span, required, approval)
        case = (status, attribution, descriptor, embargo, span, required, approval)
        assert result.status == want_status, (case, result)
        assert result.attribution == want_attr, (case, result)
        assert set(result.codes) == want_codes, (case, result)
        seen.add(result.status)
    assert seen == set(Status)


def test_applicable_agreement_prefers_the_recording_then_the_newest() -> None:
    general_old = replace(GRANTED, id=1)
    general_new = replace(GRANTED, id=5)
    specific = replace(GRANTED, id=3, recording_id=REC)
    other = replace(GRANTED, id=9, recording_id=REC + 1)
    assert applicable_agreement([general_old, general_new, specific, other], REC) == specific
    assert applicable_agreement([general_old, general_new, other], REC) == general_new
    assert applicable_agreement([other], REC) is None
    assert applicable_agreement([general_old, specific], None) == general_old
    assert applicable_agreement([], REC) is None


def test_overlapping_orders_strictest_first_and_drops_lifted_spans() -> None:
    spans = [restriction(L.background, rid=1), restriction(L.embargo, until=AFTER, rid=2),
             restriction(L.deep_background, rid=3), restriction(L.off_record, rid=4),
             restriction(L.off_record, until=AS_OF, rid=5),
             restriction(L.off_record, 0, 100.0, rid=6)]
    assert [r.id for r in overlapping(spans, 100.0, 110.0, AS_OF)] == [4, 3, 2, 1]
