// Sortable and filterable leaderboard tables: click a header to sort (numbers by their
// data-sort value, blanks last), type in the box above a table to filter its rows.
"use strict";
document.querySelectorAll("table.board").forEach((table) => {
  const headers = table.querySelectorAll("thead th");
  headers.forEach((th, column) => {
    th.addEventListener("click", () => {
      const ascending = !th.classList.contains("asc");
      headers.forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(ascending ? "asc" : "desc");
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
    });
  });
});
document.querySelectorAll("input.filter").forEach((input) => {
  input.addEventListener("input", () => {
    const needle = input.value.toLowerCase();
    const table = document.getElementById(input.dataset.table);
    Array.from(table.tBodies[0].rows).forEach((row) => {
      row.hidden = !row.textContent.toLowerCase().includes(needle);
    });
  });
});
