"""Graph queries over the example field-service app, whose design is known (fixtures/builder/apps.py)."""

from __future__ import annotations

import networkx as nx
import pytest

from analyzer.graph.build import ModelGraph, build_graph
from analyzer.graph.queries import NativeFacts, analyze_native, blast_radius
from analyzer.load.sources import load_source
from tests.conftest import APPS


@pytest.fixture(scope="module")
def graph() -> ModelGraph:
    return build_graph(load_source(str(APPS / "field-service-1.0")))


@pytest.fixture(scope="module")
def native(graph: ModelGraph) -> NativeFacts:
    return analyze_native(graph)


def labels(graph: ModelGraph, units: frozenset[str]) -> set[str]:
    return {graph.index.document_labels[unit] for unit in units}


def test_native_pages_are_those_whose_layout_content_is_native(graph: ModelGraph, native: NativeFacts) -> None:
    assert labels(graph, native.native_pages) == {
        "FieldService.WorkOrderList",
        "FieldService.WorkOrderDetail",
        "FieldService.CustomerList",
        "FieldService.CustomerDetail",
    }
    assert labels(graph, native.native_layouts) == {"FieldService.NativePhone_Default"}


def test_profile_reaches_pages_snippets_nanoflows_and_what_they_call(graph: ModelGraph, native: NativeFacts) -> None:
    reached = labels(graph, native.reached_documents)
    assert {
        "FieldService.WorkOrderList",
        "FieldService.WorkOrderCard",  # snippet called from the list
        "FieldService.ACT_CompleteWorkOrder",  # nanoflow behind a button
        "FieldService.SUB_NotifyDispatcher",  # microflow that nanoflow calls (reached, not followed)
        "FieldService.TakePicture",  # JavaScript action
    } <= reached
    # The web back office is not reached from the native profile.
    assert "FieldService.InvoiceOverview" not in reached
    assert "FieldService.ACT_GenerateInvoices" not in reached


def test_synced_entities_combine_sync_config_and_usage(native: NativeFacts) -> None:
    synced = {e.qualified_name: (e.sync_mode, e.configured) for e in native.synced_entities.values()}
    assert synced["FieldService.Customer"] == ("Constrained", True)  # configured row in the profile
    assert synced["FieldService.Photo"] == ("NoneAndPreserveData", True)
    assert synced["FieldService.WorkOrder"] == ("All", False)  # used by native pages, default mode
    assert synced["FieldService.Visit"] == ("All", False)  # retrieved by a reached nanoflow
    assert "FieldService.Invoice" not in synced  # back office only


def test_synced_associations_are_owned_by_synced_entities(graph: ModelGraph, native: NativeFacts) -> None:
    names = {graph.index.elements[a].label for a in native.synced_associations}
    assert "FieldService.Visit_WorkOrder" in names
    assert "FieldService.Invoice_WorkOrder" not in names  # owned by Invoice, which stays on the server


def test_microflows_called_from_nanoflows(graph: ModelGraph, native: NativeFacts) -> None:
    assert labels(graph, native.microflows_called_from_nanoflows) == {"FieldService.SUB_NotifyDispatcher"}


def test_dangling_references_are_recorded_not_fatal(graph: ModelGraph) -> None:
    assert "System.User" in graph.dangling
    assert "System.Image" in graph.dangling


def test_blast_radius_lists_native_pages_and_nanoflows_that_reach_an_attribute(
    graph: ModelGraph, native: NativeFacts
) -> None:
    title = graph.names["FieldService.WorkOrder.Title"]
    radius = blast_radius(graph, native, title)
    assert "FieldService.WorkOrderDetail" in radius
    assert "FieldService.WorkOrderList" in radius  # through the WorkOrderCard snippet
    invoice_number = graph.names["FieldService.Invoice.InvoiceNumber"]
    assert blast_radius(graph, native, invoice_number) == ()


def test_document_graph_has_containment_and_reference_edges(graph: ModelGraph) -> None:
    index = graph.index
    page = index.elements[graph.names["FieldService.WorkOrderDetail"]].unit
    module = next(unit for unit, root in index.unit_roots.items() if root.qualified_name == "FieldService")
    assert graph.graph.nodes[page]["type"] == "Forms$Page"
    assert nx.has_path(graph.graph, module, page)  # down the unit tree through folders
    kinds = {data["kind"] for _, _, data in graph.graph.edges(data=True)}
    assert {"contains", "name"} <= kinds
    assert set(graph.graph.nodes) == set(index.unit_roots)


def test_element_links_resolve_names_text_and_pointers(graph: ModelGraph) -> None:
    kinds = {link.kind for links in graph.references.values() for link in links}
    assert kinds == {"name", "text", "pointer"}
    for source, links in graph.references.items():
        assert source in graph.index.elements
        assert all(link.target in graph.index.elements for link in links)
        assert len({link.target for link in links}) == len(links)  # one link per target
    entity = graph.names["FieldService.WorkOrder"]
    assert graph.links(entity) == graph.references.get(entity, ())
    assert graph.links("no-such-element") == ()
