// Sortable and filterable leaderboard tables: click a header (or focus it and press Enter or
// Space) to sort (numbers by their data-sort value, blanks last); type in the box above a
// table to filter its rows by entry name and method. Without JavaScript the tables stay in
// rank order and the filter boxes stay hidden.
"use strict";
document.querySelectorAll("table.board.ranked").forEach((table) => {
  const headers = table.querySelectorAll("thead th");
  headers.forEach((th, column) => {
    th.tabIndex = 0;
    const sort = () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const numeric = th.dataset.type === "num";
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      const key = (row) => row.cells[column].dataset.sort ?? row.cells[column].textContent;
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === "" || y === "") return (x === "") - (y === "");
        const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach((row) => body.appendChild(row));
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sort();
      }
    });
  });
});
document.querySelectorAll("input.filter").forEach((input) => {
  input.hidden = false;
  input.addEventListener("input", () => {
    const needle = input.value.toLowerCase();
    const table = document.getElementById(input.dataset.table);
    Array.from(table.tBodies[0].rows).forEach((row) => {
      // Name and method only: every row's P(improvement) names the baseline it is against.
      const text = row.dataset.filter ?? row.textContent;
      row.hidden = !text.toLowerCase().includes(needle);
    });
  });
});
